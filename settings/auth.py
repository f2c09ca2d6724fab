"""Authentication: password rules and the throttling of failed logins (django-axes)."""

from __future__ import annotations

from datetime import timedelta

from settings.env import env

AUTHENTICATION_BACKENDS = [
    # First: a locked-out address or username is refused before any password hash
    # is computed by the backends after it.
    "api.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Failures within AUTH_LOCKOUT_SECONDS, counted per client address and, separately,
# per username (or API key prefix): either reaching the limit locks that one out.
AUTH_FAILURE_LIMIT = env.int("AUTH_FAILURE_LIMIT", default=5)
AUTH_LOCKOUT_SECONDS = env.int("AUTH_LOCKOUT_SECONDS", default=300)
# Hops of X-Forwarded-For added by proxies you run; 0 trusts only the socket address
# (a client can write any X-Forwarded-For it likes).
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)

AXES_FAILURE_LIMIT = AUTH_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=AUTH_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "api.lockout.client_address"
AXES_LOCKOUT_CALLABLE = "api.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
# The passwords tried are never stored; the username is what is counted.
AXES_SENSITIVE_PARAMETERS = ["password", "api_key"]
AXES_VERBOSE = False

# A process trusts an API key it found valid for this long without asking the
# database again: revoking a key, or deactivating its user, reaches every process
# within it (`manage.py revoke_api_key` waits it out before it returns). 0: no cache.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)
