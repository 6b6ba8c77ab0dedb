-- Migration: 002_create_core_schema.sql
-- Purpose: Create the markets and events tables of the core marketplace schema
-- Phase: 1
-- Checklist: 1.2

-- ============================================================================
-- MARKETS
-- ============================================================================
-- A market is one tradable listing on the Everything Market: it opens, takes
-- orders while open, closes, and is finally settled or cancelled. The slug is
-- the public, URL-safe identifier. markets_window_check rejects a market that
-- would close before it opens. updated_at is maintained by the trigger
-- function from 001_create_jobs.sql.

CREATE TABLE markets (
  id         BIGSERIAL PRIMARY KEY,
  slug       TEXT NOT NULL,
  title      TEXT NOT NULL,
  category   TEXT NOT NULL,
  status     TEXT NOT NULL DEFAULT 'draft',
  opens_at   TIMESTAMPTZ,
  closes_at  TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  CONSTRAINT markets_slug_key UNIQUE (slug),
  CONSTRAINT markets_status_check
    CHECK (status IN ('draft', 'open', 'closed', 'settled', 'cancelled')),
  CONSTRAINT markets_window_check
    CHECK (opens_at IS NULL OR closes_at IS NULL OR closes_at > opens_at)
);

CREATE TRIGGER trg_markets_updated_at
  BEFORE UPDATE ON markets
  FOR EACH ROW
  EXECUTE FUNCTION update_updated_at_column();

-- ============================================================================
-- EVENTS
-- ============================================================================
-- An event is something that happened to a market: a news item, an
-- announcement by the listing's owner, a sharp price move, or the final
-- resolution. Events belong to exactly one market (events_market_id_fkey);
-- deleting a market deletes its events. idx_events_market_occurred serves the
-- market page's timeline, newest first.

CREATE TABLE events (
  id          BIGSERIAL PRIMARY KEY,
  market_id   BIGINT NOT NULL,
  kind        TEXT NOT NULL,
  headline    TEXT NOT NULL,
  source_url  TEXT,
  occurred_at TIMESTAMPTZ NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  CONSTRAINT events_market_id_fkey
    FOREIGN KEY (market_id) REFERENCES markets (id) ON DELETE CASCADE,
  CONSTRAINT events_kind_check
    CHECK (kind IN ('news', 'announcement', 'price_move', 'resolution'))
);

CREATE INDEX idx_events_market_occurred ON events (market_id, occurred_at DESC);

-- ============================================================================
-- ROLLBACK
-- ============================================================================
-- To rollback this migration:
--   DROP TABLE IF EXISTS events;
--   DROP TRIGGER IF EXISTS trg_markets_updated_at ON markets;
--   DROP TABLE IF EXISTS markets;
--
-- WARNING: This will delete all market and event data. Backup both tables before rollback.
