// VnicConfig: the configuration database and what the CLI and daemon share
// about it.
//
// - LMDB.swift: owning Swift types over LMDB's C API (environment, read and
//   write transactions, named tables).
// - Schema.swift: the tables, key layout, schema version and the migration
//   from older versions.
// - ConfigStore.swift: opening (create, migrate, read-only), reads, snapshots,
//   the audit log's reads, and `update`, which runs a ConfigTransaction
//   (ConfigTransaction.swift: create, delete, update with audit, VM requests).
// - VNICParameter.swift: the one table of a VNIC's fields (parameters, link
//   properties, identity): names, kinds, parsers, printers, defaults,
//   validators, TLV tags, policy domains. VNICRecord.swift: the record;
//   VNICRecordCodec.swift: its binary form; ValueSyntax.swift: the text forms
//   of bandwidths, sizes and lists.
// - VNICPolicy.swift: what the VM may change, and matching requests against it.
// - AuditLog.swift: the append-only audit entries.
// - FastPath.swift: ConfigReader and VNICView, the per-burst zero-copy reads of
//   a dataplane worker.
// - RuntimeStatus.swift: what a running vnicd publishes beside the database.
//
// Invariants: the database is the source of truth; every committed change of
// the configuration bumps the generation in the same transaction (audit-only
// appends do not); stored records always pass `VNICRecord.validate()` and are
// unique by name, MAC and port; an index is never shared by two live VNICs; a
// VNIC is one record, so it is wholly present or wholly absent. Errors are
// VnicError (exit 2 for bad input, 1 for runtime failures), one line naming the
// path or value at fault.
