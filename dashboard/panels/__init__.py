"""Side and bottom panels of the map page (filters, KPI tiles, charts, case table), each a layout
function plus the small renderers its callbacks share; the callbacks themselves are wired in map_page."""
