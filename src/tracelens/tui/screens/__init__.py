"""One module per screen: find, trace, replay, this week, help."""
