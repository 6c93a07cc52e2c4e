"""The waitlist core that reqsys and childsys share: the rules (statuses, the state machine), the calendar
(age classes, start months, offer deadlines), priority criteria and scoring, the rank order, the seed's
body, the model columns both databases carry, and the skeleton of applying a synced event."""
