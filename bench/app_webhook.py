"""What answering one Saleor webhook delivery costs in App mode (Saleor waits 18 s, then retries).

``ORDER_CREATED`` deliveries in the shape of the App's subscription query (a
two-line order), each signed with an RSA key like Saleor's (detached JWS),
through the real receiver (``saleor_app.webhooks.receive``, Django's
``RequestFactory``, no HTTP), celery mode with the on-commit enqueue a no-op.
Printed next to the floors measured in the same run: the RS256 verification
alone (cryptography), and a raw single-row ``INSERT`` of the same event
through a cursor in autocommit (one COMMIT each, as the receiver's).
"""

import base64
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.common import RESULTS, Dist, say, truncate

ORDER = {"number": "1", "token": "b4301ec4-ef31-4514-a10a-ada35c8f3820", "status": "UNFULFILLED",
         "userEmail": "", "languageCodeEnum": "EN", "voucherCode": None, "checkoutId": None,
         "channel": {"slug": "default-channel", "currencyCode": "USD"}, "user": None, "metadata": [],
         "billingAddress": {"firstName": "Jane", "lastName": "Doe", "phone": "+16505550100", "city": "Mountain View",
                            "postalCode": "94043", "countryArea": "CA", "country": {"code": "US"}},
         "shippingAddress": None, "total": {"gross": {"amount": 60.0, "currency": "USD"}, "net": {"amount": 60.0}},
         "undiscountedTotal": {"gross": {"amount": 60.0}}, "shippingPrice": {"gross": {"amount": 0.0}},
         "lines": [{"id": f"T3JkZXJMaW5lOj{i}", "productName": "Monospace Tee", "variantName": "S",
                    "productSku": "328223580", "productVariantId": "UHJvZHVjdFZhcmlhbnQ6MzQ4", "quantity": 1 + i,
                    "unitPrice": {"gross": {"amount": 20.0, "currency": "USD"}},
                    "totalPrice": {"gross": {"amount": 20.0 * (1 + i)}},
                    "thumbnail": {"url": "https://shop.example.com/media/tee.png"},
                    "variant": {"id": "UHJvZHVjdFZhcmlhbnQ6MzQ4",
                                "product": {"id": "UHJvZHVjdDoxNTI=", "slug": "monospace-tee"}}} for i in range(2)]}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwks_server(jwks: dict):
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run(n=2000):
    import jwt
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from django.conf import settings
    from django.db import connection
    from django.test import RequestFactory

    from saleor_flows import clock
    from saleor_flows.api.auth import key_set
    from saleor_flows.engine import dispatch
    from saleor_flows.models import Event
    from saleor_flows.saleor_app import signature, webhooks

    from bench.ingest import _noop_enqueue

    say(f"app_webhook: {n:,} signed ORDER_CREATED deliveries through the App's receiver")
    truncate()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "kid": "k1", "use": "sig"}
    server = _jwks_server({"keys": [jwk]})
    api_url = f"http://127.0.0.1:{server.server_address[1]}/graphql/"
    original = settings.SALEOR_FLOWS
    settings.SALEOR_FLOWS = {**original, "APP_SALEOR_API_URL": api_url}
    key_set.reset()
    header = _b64url(json.dumps({"alg": "RS256", "b64": False, "crit": ["b64"], "kid": "k1"}).encode())
    now = clock.now()
    deliveries = []
    for i in range(n):
        order = {**ORDER, "id": _b64url(f"Order:{i:08d}".encode()), "number": str(i), "userEmail": f"o{i}@example.com",
                 "created": (now - timedelta(seconds=1)).isoformat()}
        body = json.dumps({"__typename": "OrderCreated", "issuedAt": now.isoformat(), "version": "3.24.0",
                           "order": order}).encode()
        signed = f"{header}..{_b64url(key.sign(header.encode() + b'.' + body, padding.PKCS1v15(), hashes.SHA256()))}"
        deliveries.append((body, signed))
    factory = RequestFactory()
    domain = api_url.split("/")[2]
    try:
        verify_times = []
        for body, signed in deliveries[:500]:
            t0 = time.perf_counter()
            signature.verify(body, signed, api_url)
            verify_times.append(time.perf_counter() - t0)
        answer_times = []
        with dispatch.forced("celery"), _noop_enqueue():
            for body, signed in deliveries:
                request = factory.post("/saleor/webhooks/order_created/", body, content_type="application/json",
                                       headers={"Saleor-Api-Url": api_url, "Saleor-Domain": domain,
                                                "Saleor-Event": "order_created", "Saleor-Signature": signed})
                t0 = time.perf_counter()
                response = webhooks.receive(request, "order_created")
                answer_times.append(time.perf_counter() - t0)
                assert response.status_code == 200, response.content
        assert Event.objects.filter(name="order_created").count() == n
        payload = json.dumps({"$ref": {"data": {"lines": ORDER["lines"]}}})
        insert_times = []
        with connection.cursor() as cursor:
            for i in range(n):
                t0 = time.perf_counter()
                cursor.execute(
                    "INSERT INTO saleor_flows_event (name, occurred_at, received_at, email, user_id, channel, payload, "
                    "dedupe_key, status, error) VALUES (%s, now(), now(), %s, '', 'default-channel', %s, %s, "
                    "'pending', '')", ["order_created", f"raw{i}@example.com", payload, f"raw:{i}"])
                insert_times.append(time.perf_counter() - t0)
    finally:
        settings.SALEOR_FLOWS = original
        key_set.reset()
        server.shutdown()
        server.server_close()
    answer, verify, insert = Dist(answer_times), Dist(verify_times), Dist(insert_times)
    say(f"  answer (verify + parse + shape + record_event): {answer.describe(digits=2)}")
    say(f"  floor: RS256 verification alone:                {verify.describe(digits=2)}")
    say(f"  floor: raw single-row INSERT (autocommit):      {insert.describe(digits=2)}")
    RESULTS.add("app_webhook: one signed delivery answered (p99)",
                f"{answer.p(99) * 1e3:.1f} ms (median {answer.median * 1e3:.1f} ms; floors: verify "
                f"{verify.median * 1e3:.2f} ms + raw INSERT {insert.median * 1e3:.2f} ms)",
                "well inside Saleor's 18 s response timeout", answer.p(99) < 1.0)
