"""Django core settings; integrations are configured in the modules imported at the end."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.core.exceptions import ImproperlyConfigured

# First: APP_ENV=production refuses to start without what a deployer must choose.
from settings import deployment
from settings.deployment import ALLOWED_HOSTS, DATABASE_URL, REDIS_URL  # noqa: F401 (settings)
from settings.env import APP_ENV, BASE_DIR, PRODUCTION, RUN_DIR, env  # noqa: F401 (APP_ENV is a setting)

DEBUG = env.bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when APP_ENV=production")
_INSECURE_KEY_PREFIX = "django-insecure"
SECRET_KEY = deployment.SECRET_KEY
if not SECRET_KEY or SECRET_KEY.startswith(_INSECURE_KEY_PREFIX):
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a long random value (DEBUG is off). "
            "`make run` writes one into .env on first start."
        )
    SECRET_KEY = SECRET_KEY or f"{_INSECURE_KEY_PREFIX}-debug-only"

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "projections",
    "api",
    "workers",
    "webhooks",
    "deploy",
    "axes",
]

MIDDLEWARE = [
    "api.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout seen during the view into a 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "settings.urls"
# Unfold's login form has no `next` field: a login at /admin/login/ lands here,
# not on Django's default /accounts/profile/ (which this service does not serve).
LOGIN_REDIRECT_URL = "/admin/"
WSGI_APPLICATION = "settings.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


DATABASES = {
    "default": env.db_url_config(DATABASE_URL)
    if DATABASE_URL
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": str(RUN_DIR / "db.sqlite3")}
}
# Off on purpose: events are written on the event store's own connections, so a
# request-wide Django transaction would not cover them, and holding one open across
# the request would only lengthen lock times on the projection table.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes share the file: wait for the writer instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = RUN_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Typed as Django declares the setting: each backend takes keys of its own.
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # The cache only throttles; an unreachable Redis must cost milliseconds.
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("BEHIND_TLS_PROXY", default=False)
    else None
)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool(
    "SECURE_COOKIES", default=PRODUCTION
)
if PRODUCTION:
    # TLS only. The probes of a load balancer or an orchestrator speak plain HTTP to
    # the host itself, so the health and metrics paths are not redirected.
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
# SPEC: bodies up to 1 MiB are parsed and validated field by field; larger is a 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

PROJECTION_LAG_LIMIT = env.float("PROJECTION_LAG_LIMIT", default=30.0)
# Keys the Idempotency-Key request fingerprints (api/idempotency.py), which are
# published with each Created event's chain fields. Required in production; a local
# run gets one in .env, and a process given neither derives one from SECRET_KEY.
IDEMPOTENCY_FINGERPRINT_KEY = (
    deployment.IDEMPOTENCY_FINGERPRINT_KEY
    or hmac.new(
        SECRET_KEY.encode(), b"payouts.idempotency-fingerprint-key", hashlib.sha256
    ).hexdigest()
)
# When set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; check
# --deploy warns in production without it (api/checks.py).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# e.g. payouts.W001 where /metrics is reachable from a private network only.
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])
STUCK_PAYOUT_AFTER = env.int("STUCK_PAYOUT_AFTER", default=120)
# GET payouts/?as_of=: candidates replayed from the event store per request, at most.
AS_OF_SCAN_LIMIT = env.int("AS_OF_SCAN_LIMIT", default=1000)
# GET events/?limit=all (NDJSON): events read from the store per batch.
EVENT_FEED_BATCH = env.int("EVENT_FEED_BATCH", default=500)
DEMO_ADMIN_USERNAME = env.str("DEMO_ADMIN_USERNAME", default="admin")

from settings.admin import *  # noqa: E402, F403
from settings.auth import *  # noqa: E402, F403
from settings.celery import *  # noqa: E402, F403
from settings.checkpoints import *  # noqa: E402, F403
from settings.drf import *  # noqa: E402, F403
from settings.eventstore import *  # noqa: E402, F403
from settings.gateway import *  # noqa: E402, F403
from settings.ledger import *  # noqa: E402, F403
from settings.logging import *  # noqa: E402, F403
from settings.processes import *  # noqa: E402, F403
from settings.webhooks import *  # noqa: E402, F403
