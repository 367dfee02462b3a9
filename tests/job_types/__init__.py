"""Job types the tests declare outside :mod:`actors`, as an engineer adding one would."""
