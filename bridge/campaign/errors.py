"""The one error that keeps a campaign from starting."""


class CampaignError(Exception):
    """The campaign cannot start: unreadable file, no `phone` column, foreign results file."""
