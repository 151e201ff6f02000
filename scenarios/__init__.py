"""Locustfiles: `locust -f scenarios` loads every module here that does not start with an underscore."""
