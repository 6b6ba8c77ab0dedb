-- Migration: 004_alter_events_add_impact_score.sql
-- Purpose: Add an impact score (0-100) to events for ranking the market timeline
-- Phase: 1
-- Checklist: 1.4

-- ============================================================================
-- EVENTS IMPACT SCORE
-- ============================================================================
-- impact_score rates how much an event moved its market, from 0 (no visible
-- effect) to 100 (decisive, e.g. the resolution). It is nullable and has no
-- default, so adding it changes only the catalog and does not rewrite events.
-- 005_backfill_events_impact_score.sql fills in the existing rows.
-- events_impact_score_range is checked against existing rows (all NULL) when added.
-- backout:ignore-file scan-under-lock

ALTER TABLE events ADD COLUMN impact_score NUMERIC(5, 2);

ALTER TABLE events
  ADD CONSTRAINT events_impact_score_range
  CHECK (impact_score IS NULL OR impact_score BETWEEN 0 AND 100);

-- ============================================================================
-- ROLLBACK
-- ============================================================================
-- To rollback this migration:
--   ALTER TABLE events DROP CONSTRAINT IF EXISTS events_impact_score_range;
--   ALTER TABLE events DROP COLUMN IF EXISTS impact_score;
--
-- WARNING: This will delete every event's impact score. Back up events (id, impact_score)
-- before rollback.
