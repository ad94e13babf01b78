"""Where a search keeps its record: the run directory's files and its embedded database."""

from kernel_search.store.database import DB_FILE, SearchDatabase, open_many, source_hash
from kernel_search.store.rundir import RunDirectory

__all__ = ["DB_FILE", "RunDirectory", "SearchDatabase", "open_many", "source_hash"]
