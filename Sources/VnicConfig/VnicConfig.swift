// VnicConfig: the configuration database and what the CLI and daemon share
// about it.
//
// - LMDB.swift: owning Swift types over LMDB's C API (environment, read and
//   write transactions, named tables).
// - Schema.swift: the tables and key layout; ConfigStore.swift: the VNIC store
//   on top (validation, uniqueness, index assignment, generation).
// - VNICRecord.swift, VNICParameter.swift, VNICRecordCodec.swift: a VNIC's
//   fields, the one table of their names/tags/syntax, and their binary form.
// - RuntimeStatus.swift: what a running vnicd publishes beside the database.
//
// Invariants: the database is the source of truth; every committed write
// bumps the generation in the same transaction; stored records always pass
// `VNICRecord.validate()` and are unique by name, MAC and port; an index is
// never shared by two live VNICs. Errors are VnicError (exit 2 for bad input,
// 1 for runtime failures), one line naming the path or value at fault.
