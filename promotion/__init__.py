"""Promotion: the statistics that judge a challenger against the champion (gates), and later the
flow that takes a challenger through shadow, canary and a person's approval."""
