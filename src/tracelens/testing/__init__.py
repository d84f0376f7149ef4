"""Test helpers shipped with tracelens.

``tracelens.testing.fake_anthropic`` is a local, scriptable stand-in for the
Anthropic Messages API, used by the test suite and by the demo so that replay
can be exercised without a key or network access.
"""
