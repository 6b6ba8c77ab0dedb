-- Migration: 003_add_markets_index.sql
-- Purpose: Index markets by status and closing time for the browse and close-out queries
-- Phase: 1
-- Checklist: 1.3

-- ============================================================================
-- MARKETS STATUS INDEX
-- ============================================================================
-- The browse page lists open markets closing soonest first, and the close-out
-- job looks for open markets whose closes_at has passed. Both filter on status
-- and sort or range on closes_at, which this index serves.
-- A plain CREATE INDEX blocks writes (not reads) to markets while it builds.
-- In Phase 1 the table is small and this runs in staging only; on a large
-- production table, use CREATE INDEX CONCURRENTLY outside a transaction.
-- backout:ignore-file index-not-concurrent

CREATE INDEX idx_markets_status_closes_at ON markets (status, closes_at);

-- ============================================================================
-- ROLLBACK
-- ============================================================================
-- To rollback this migration:
--   DROP INDEX IF EXISTS idx_markets_status_closes_at;
