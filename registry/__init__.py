"""Curated data shipped with vcframe-core (installed as the package ``vcframe.registry``)."""
