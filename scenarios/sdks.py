"""Users that send through the real Python SDKs, when the profile's `real_sdks` gives them users.

Needs `pip install 'cdp-harness[sdk]'`; see docs/auditing-your-traffic.md.
"""

from harness import hooks  # noqa: F401  (plugs the harness into Locust's events)
from harness.sdk_users import SdkUser


class SegmentPythonSdkUser(SdkUser):
    sdk = "segment-analytics-python"


class RudderPythonSdkUser(SdkUser):
    sdk = "rudder-sdk-python"
