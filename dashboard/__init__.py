"""The dashboard: Flask/Dash server, command map page, static-layer endpoints."""
