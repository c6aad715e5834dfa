"""Routing rules: which agent, number or message a call gets."""

from bridge.routing.loader import RoutesError, load_routes, parse_routes
from bridge.routing.table import Decision, RoutingTable

__all__ = ["Decision", "RoutesError", "RoutingTable", "load_routes", "parse_routes"]
