-- Migration: 005_backfill_events_impact_score.sql
-- Purpose: Backfill impact_score for existing events from their kind
-- Phase: 1
-- Checklist: 1.5

-- ============================================================================
-- BACKFILL LOG
-- ============================================================================
-- impact_score_backfill_log records every row this migration fills and the
-- score it wrote, so the rollback can undo exactly this backfill and nothing
-- else. A log row disappears with its event.

CREATE TABLE impact_score_backfill_log (
  event_id         BIGINT PRIMARY KEY,
  backfilled_score NUMERIC(5, 2) NOT NULL,
  backfilled_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  CONSTRAINT impact_score_backfill_log_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE
);

-- ============================================================================
-- BACKFILL
-- ============================================================================
-- Events created before 004_alter_events_add_impact_score.sql have no score.
-- Until the scoring job rates them, each gets a default by kind: a resolution
-- decides its market (100), a price move is visible by definition (50), an
-- announcement usually matters (25), and news is the weakest signal (10).
-- Data preservation: the backfill only fills NULL scores, so the previous
-- values are all NULL. The UPDATE and the log insert are one statement, so the
-- log holds exactly the rows filled. The rollback resets to NULL only the
-- logged rows that still hold the backfilled score; a score written since then
-- by the scoring job or a moderator is kept.

WITH filled AS (
  UPDATE events
     SET impact_score = CASE kind
                          WHEN 'resolution' THEN 100.00
                          WHEN 'price_move' THEN 50.00
                          WHEN 'announcement' THEN 25.00
                          ELSE 10.00
                        END
   WHERE impact_score IS NULL
  RETURNING id, impact_score
)
INSERT INTO impact_score_backfill_log (event_id, backfilled_score)
SELECT id, impact_score FROM filled;

-- ============================================================================
-- ROLLBACK
-- ============================================================================
-- To rollback this migration:
--   UPDATE events AS e SET impact_score = NULL FROM impact_score_backfill_log AS l
--     WHERE e.id = l.event_id AND e.impact_score = l.backfilled_score;
--   DROP TABLE IF EXISTS impact_score_backfill_log;
--
-- WARNING: Backfilled scores are lost (set back to NULL), and so is the log of which rows were
-- backfilled. Scores changed since the backfill are kept. Back up impact_score_backfill_log first.
