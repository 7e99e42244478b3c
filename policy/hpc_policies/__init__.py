"""The policy pack's rules, one module per area; `pack` assembles them."""
