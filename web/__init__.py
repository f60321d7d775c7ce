"""The HTTP layer: parse, authorize, call one domain function, serialize."""
