"""The platform on one machine: the shipped ASL and handlers, run against moto."""
