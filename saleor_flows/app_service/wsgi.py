"""The WSGI application the web server (gunicorn) serves."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor_flows.app_service.settings")
application = get_wsgi_application()
