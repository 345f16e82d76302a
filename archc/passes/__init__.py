"""Pure functions over the IR: shape inference, claims, accounting and the fusion plan."""
