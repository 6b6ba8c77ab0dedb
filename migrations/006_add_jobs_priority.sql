-- Migration: 006_add_jobs_priority.sql
-- Purpose: Add a priority to jobs so urgent work (payouts, settlement) is claimed first
-- Phase: 1
-- Checklist: 1.6

-- ============================================================================
-- JOBS PRIORITY
-- ============================================================================
-- Workers claim the highest priority first, then the earliest run_after.
-- Priority runs from -100 (background) to 100 (urgent); existing and new jobs
-- default to 0, which keeps today's first-in, first-out order among them.
-- Since PostgreSQL 11, ADD COLUMN with a constant DEFAULT changes only the
-- catalog: existing rows are not rewritten, and NOT NULL holds at once.
-- idx_jobs_claimable_priority serves the new claim order; idx_jobs_claimable
-- stays for workers that still claim by run_after alone.

ALTER TABLE jobs ADD COLUMN priority SMALLINT NOT NULL DEFAULT 0;

ALTER TABLE jobs
  ADD CONSTRAINT jobs_priority_range CHECK (priority BETWEEN -100 AND 100);

CREATE INDEX idx_jobs_claimable_priority
  ON jobs (priority DESC, run_after)
  WHERE status = 'queued';

-- ============================================================================
-- ROLLBACK
-- ============================================================================
-- To rollback this migration:
--   DROP INDEX IF EXISTS idx_jobs_claimable_priority;
--   ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_priority_range;
--   ALTER TABLE jobs DROP COLUMN IF EXISTS priority;
--
-- WARNING: This will delete every job's priority; queued jobs are then claimed in run_after order
-- only. Back up jobs (id, priority) before rollback.
