"""The Locust plugin: everything `locust -f scenarios` does beyond defining User classes.

Importing `loadgen.plugin.hooks` registers its listeners on Locust's events; the locustfiles in
`scenarios/` import it and define only thin User classes and the load shape. The rest of `loadgen`
never imports Locust.
"""
