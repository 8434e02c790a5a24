"""ml-connector's common package: event contracts, topics, settings and the API clients.

Services depend on this package and never on one another.
"""
