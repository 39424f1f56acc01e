"""Case statuses: the one list shared by the store, demo data, importers, map styles and the workflow.

reported → registered | rejected; registered → dispatched → (returned → dispatched) → handling → handled
→ verifying → closed | rework (→ handling); parked (挂账) is a side state of an open case. An extension
(延期) is not a status: it moves the deadline of a case in handling.
"""
STATUSES = {
    # code: (Chinese, English, open?)
    "reported": ("上报", "Reported", True),
    "registered": ("立案", "Registered", True),
    "rejected": ("不予立案", "Rejected", False),
    "dispatched": ("已派遣", "Dispatched", True),
    "returned": ("已退回", "Returned", True),
    "handling": ("处置中", "Handling", True),
    "handled": ("已反馈", "Handled", True),
    "verifying": ("核查中", "Verifying", True),
    "rework": ("返工", "Rework", True),
    "parked": ("挂账", "Parked", True),
    "closed": ("结案", "Closed", False),
}
OPEN = tuple(s for s, (_, _, is_open) in STATUSES.items() if is_open)
TERMINAL = tuple(s for s in STATUSES if s not in OPEN)
# Registered cases count towards 结案率 / 按期结案率 (see README: indicators).
REGISTERED_STAGES = tuple(s for s in STATUSES if s not in ("reported", "rejected"))
PRIORITIES = ("normal", "urgent")
SETBACK_MODES = {"self": ("自管", "Self-managed"), "entrusted": ("托管", "Entrusted"),
                 "joint": ("共管", "Co-managed")}
SETBACK_USES = {"parking": ("停车", "Parking"), "green": ("绿化", "Greening"),
                "seating": ("外摆", "Outdoor seating"), "passage": ("通行", "Passage"),
                "display": ("展示", "Display")}
BERTH_STATES = {"free": ("空闲", "Free"), "occupied": ("占用", "Occupied"),
                "out_of_service": ("停用", "Out of service")}
BERTH_TYPES = {"on_street": ("路内", "On-street"), "off_street": ("路外", "Off-street")}
VEHICLES = {"motor": ("机动车", "Motor"), "non_motor": ("非机动车", "Non-motor")}
