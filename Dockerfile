# The App service (README "Saleor Cloud / App mode"): one image for web, worker and beat.
#   docker build -t saleor-flows-app .
#   docker run --env-file .env saleor-flows-app          # the web server; "worker", "beat", "migrate", "check" as the command
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Installed as a package (not editable) with the [app] extra: gunicorn, psycopg, redis, anymail.
# The Dashboard App is prebuilt in the package (saleor_flows/dashboard/static): no Node here.
COPY . /tmp/saleor-flows
RUN pip install "/tmp/saleor-flows[app]" && rm -rf /tmp/saleor-flows

# Never run as root: a system user without a login shell, owning only its home.
RUN useradd --system --uid 10001 --create-home --home-dir /home/flows --shell /usr/sbin/nologin flows
USER flows
WORKDIR /home/flows

EXPOSE 8000
# What the web container's health check asks (the database must answer); worker and beat turn it off.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

ENTRYPOINT ["saleor-flows-app"]
CMD ["web"]
