"""moto_server, with DynamoDB's conditional writes made atomic.

moto (5.2) evaluates a ConditionExpression and then writes, without a lock, while its server
handles requests on concurrent threads: two conditional PutItems on one key can both pass
their check (seen in `two_replicas_on_one_table_alert_once_per_dedup_key`: one dedup key
claimed twice). DynamoDB applies each conditional write atomically, and meterwatch's state
store relies on that, so the tests' moto serialises DynamoDB's writes. Reads need no lock: a
write replaces an item in one assignment.

Usage: python atomic_moto.py [moto_server arguments]
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

# Reentrant: a batch or transaction write calls the single-item writes.
_WRITES = threading.RLock()


def _serialised(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _WRITES:
            return method(*args, **kwargs)

    return wrapper


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    sys.exit(main())
