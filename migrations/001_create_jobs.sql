-- Migration: 001_create_jobs.sql
-- Purpose: Create the background jobs queue with an updated_at trigger
-- Phase: 1
-- Checklist: 1.1

-- ============================================================================
-- JOBS TABLE
-- ============================================================================
-- Background work for the marketplace (order settlement, seller payouts,
-- notification fan-out) is queued here. Workers claim the next job with
-- SELECT ... FOR UPDATE SKIP LOCKED, moving it from 'queued' to 'running';
-- idx_jobs_claimable keeps that lookup small by covering queued jobs only.
-- The table is new and empty, so this section locks nothing in use.

CREATE TABLE jobs (
  id           BIGSERIAL PRIMARY KEY,
  kind         TEXT NOT NULL,
  payload      JSONB NOT NULL DEFAULT '{}'::jsonb,
  status       TEXT NOT NULL DEFAULT 'queued',
  attempts     INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL DEFAULT 5,
  run_after    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  locked_by    TEXT,
  locked_at    TIMESTAMPTZ,
  last_error   TEXT,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  CONSTRAINT jobs_status_check
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  CONSTRAINT jobs_attempts_check CHECK (attempts >= 0 AND attempts <= max_attempts)
);

CREATE INDEX idx_jobs_claimable ON jobs (run_after) WHERE status = 'queued';

-- ============================================================================
-- UPDATED_AT TRIGGER
-- ============================================================================
-- update_updated_at_column() stamps updated_at on every UPDATE so workers and
-- dashboards can see when a job last changed. The function is generic: later
-- migrations attach it to other tables, so roll those back before this one.
-- It is created with CREATE FUNCTION (not CREATE OR REPLACE) so that an
-- existing function of the same name makes this migration fail instead of
-- being silently replaced and then dropped by the rollback.

CREATE FUNCTION update_updated_at_column()
RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$;

CREATE TRIGGER trg_jobs_updated_at
  BEFORE UPDATE ON jobs
  FOR EACH ROW
  EXECUTE FUNCTION update_updated_at_column();

-- ============================================================================
-- ROLLBACK
-- ============================================================================
-- To rollback this migration:
--   DROP TRIGGER IF EXISTS trg_jobs_updated_at ON jobs;
--   DROP FUNCTION IF EXISTS update_updated_at_column();
--   DROP TABLE IF EXISTS jobs CASCADE;
--
-- WARNING: This will delete all job data. Backup before rollback.
