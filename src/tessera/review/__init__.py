"""The marketing-ops review app: calendar, date, campaign, customer and programme pages over a
read-only snapshot of the warehouse, and approvals through the approval core."""
