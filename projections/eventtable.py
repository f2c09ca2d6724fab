"""Where workers/processing.py still imports EventTable from; it lives in
projections/database.py with the rest of what differs between the databases."""

from projections.database import EventTable as EventTable
