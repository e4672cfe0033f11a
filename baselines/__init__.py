"""Registered methods. Every module here is imported by ``ravar_bench.registry.discover()``;
adding a method = one file with a ``@register_method`` class (plus its configs under configs/<name>/)."""
