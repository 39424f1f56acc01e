"""Map layers: static geometry layers built once per data version (cache, boundaries, grids, berths,
setbacks) and the per-request queries of the aggregation side (filters, cases, metrics)."""
