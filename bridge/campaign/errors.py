"""The errors that keep a campaign from starting."""


class CampaignError(Exception):
    """The campaign cannot start: unreadable file, no `phone` column, foreign results file."""


class ResultsBusy(CampaignError):
    """Another run of `callbridge campaign` is using the results file."""
