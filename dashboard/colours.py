"""The colours of statuses, berth states and setback modes/uses: one table for the map, the live layer,
the workspace and the wall, so a status reads the same everywhere on the command floor."""

STATUS_COLOURS = {
    "reported": "#b0bec5", "registered": "#4fc3f7", "rejected": "#616161", "dispatched": "#29b6f6",
    "returned": "#ff8a65", "handling": "#ffca28", "handled": "#d4e157", "verifying": "#9ccc65",
    "rework": "#ef5350", "parked": "#ab47bc", "closed": "#66bb6a",
}
BERTH_COLOURS = {"f": "#2ecc71", "o": "#e74c3c", "x": "#7f8c8d"}
SETBACK_COLOURS = {"self": "#c678dd", "entrusted": "#e5c07b", "joint": "#56b6c2",
                   "parking": "#61afef", "green": "#98c379", "seating": "#e5c07b", "passage": "#abb2bf",
                   "display": "#d19a66"}
