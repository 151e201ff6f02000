"""One User class per client library: each sends its source's traffic exactly as that library does.

How many users each gets, and how fast each sends, comes from the profile and --target-rate
(see harness.plan); what each request looks like comes from loadgen.libraries.
"""

from harness import hooks  # noqa: F401  (plugs the harness into Locust's events)
from harness.users import SourceUser


class AndroidUser(SourceUser):
    source = "android"


class IosUser(SourceUser):
    source = "ios"


class XamarinUser(SourceUser):
    source = "xamarin"


class BrowserUser(SourceUser):
    source = "web"


class NodeUser(SourceUser):
    source = "node"


class PythonUser(SourceUser):
    source = "python"


class RubyUser(SourceUser):
    source = "ruby"


class JavaUser(SourceUser):
    source = "java"


class GoUser(SourceUser):
    source = "go"


class PhpUser(SourceUser):
    source = "php"


class DotnetUser(SourceUser):
    source = "dotnet"


class HttpApiUser(SourceUser):
    source = "http"
