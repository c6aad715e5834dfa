"""Every HTTP endpoint: handlers parse the request, call a service, and respond.
The only server package that imports Starlette."""
