"""The generator's ground truth: P(SQL) of a lead from what can be observed at its scoring time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.synthetic.vocab import COUNTRIES, ICP_INDUSTRIES, INDUSTRIES

# Chosen so that about 9% of leads reach SQL (real funnels: 5-15%).
INTERCEPT = -5.05


def true_logit(lead: dict[str, np.ndarray], eng: pd.DataFrame, segment_effect: bool = False) -> np.ndarray:
    """The generator's truth: follows the points model's directions, but is not additive."""
    sen = lead["seniority"]
    senior = sen <= 2
    seniority_effect = np.array([0.9, 0.85, 0.6, 0.3, 0.0, -1.6])[sen]
    log_emp = np.log10(np.maximum(lead["employees"], 1))
    size_effect = 0.75 * np.exp(-((log_emp - 3.0) ** 2) / 0.9) - 0.35
    icp = np.isin(lead["industry"], [INDUSTRIES.index(i) for i in ICP_INDUSTRIES])
    region = np.array([COUNTRIES[c][1] for c in range(len(COUNTRIES))], dtype=object)[lead["country"]]
    good_region = np.isin(region, ["North America", "Europe"])
    # The segment effect: APAC's SMB team sells to small firms' hands-on managers, not to large
    # firms' executives, and its buyers answer to other signals (below).
    apac = (region == "APAC") & segment_effect
    apac_size = 0.75 * np.exp(-((log_emp - 1.6) ** 2) / 0.6) - 0.35
    apac_seniority = np.array([-0.3, 0.2, 0.8, 0.7, 0.2, -1.6])[sen]
    crm = np.isin(lead["tech"], [0, 1])
    source_effect = np.array([0.1, 0.0, -0.25, 0.15, 0.55, 0.2, -0.45, -0.1, 0.05, 0.3])[lead["source"]]

    pricing = eng["pricing_page_views_total"].to_numpy()
    pricing_7 = eng["pricing_page_views_7d"].to_numpy()
    returns = eng["return_visits_7d"].to_numpy()
    mid = eng["downloads_mid"].to_numpy()
    bottom = eng["downloads_bottom"].to_numpy()
    top = eng["downloads_top"].to_numpy()
    attended = eng["webinars_attended"].to_numpy()
    registered = eng["webinars_registered"].to_numpy()
    clicks = eng["email_clicks_30d"].to_numpy()
    demo = eng["demo_requests"].to_numpy() > 0
    consult = eng["consultation_requests"].to_numpy() > 0
    idle = eng["days_since_last_activity"].to_numpy()
    idle = np.where(np.isnan(idle), 90.0, idle)

    engaged = (
        1.0 * (1 - np.exp(-pricing / 2.0))
        + 0.45 * (pricing_7 > 0) * senior
        + 0.55 * np.tanh(returns / 3.0)
        + 0.55 * (1 - np.exp(-mid))
        + 0.6 * (1 - np.exp(-bottom))
        + 0.08 * np.minimum(top, 3)
        + 0.55 * np.minimum(attended, 2) / 2
        + 0.1 * (registered > attended)
        + 0.18 * np.log1p(clicks)
        + 1.3 * demo
        + 0.6 * consult
    )
    fit = (
        np.where(apac, apac_seniority, seniority_effect)
        + np.where(apac, apac_size, size_effect)
        + 0.45 * icp
        + 0.3 * good_region
        + 0.25 * crm
        - 0.55 * lead["freemail"]
        + source_effect
    )
    # APAC's buyers answer to other signals. Webinars, consultations and email
    # replies carry them; pricing pages and demo requests come mostly from resellers pricing a deal
    # for someone else and count against the lead.
    apac_engaged = (
        -1.3 * (1 - np.exp(-pricing / 2.0))
        + 0.4 * np.tanh(returns / 3.0)
        + 0.5 * (1 - np.exp(-mid))
        + 0.5 * (1 - np.exp(-bottom))
        + 2.2 * np.minimum(attended, 2) / 2
        + 0.4 * (registered > attended)
        + 0.7 * np.log1p(clicks)
        - 1.3 * demo
        + 2.2 * consult
    )
    engaged = np.where(apac, apac_engaged, engaged)
    # Engagement matters more when the lead fits; activity decays with time since the last touch.
    interaction = 0.35 * np.clip(fit, -1, 1.5) * np.minimum(engaged, 2.0)
    recency = -1.0 * (1 - np.exp(-idle / 25.0))
    return INTERCEPT + fit + 1.05 * engaged + interaction + recency
