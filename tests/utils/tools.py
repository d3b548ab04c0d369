"""The order-lookup tool the unit tests declare: an id argument with a pattern, so a call
can be well-formed JSON and still invalid against the schema."""

from typing import Any

LOOKUP: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "An order's status",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "pattern": "^A-[0-9]+$"}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
    },
}
