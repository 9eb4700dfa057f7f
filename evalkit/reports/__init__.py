"""Views derived from run records: leaderboard tables and submission exports."""
