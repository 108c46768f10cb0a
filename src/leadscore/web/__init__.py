"""Sales' pages on top of the service: the MQL queue, a lead, its CRM card, and decisions."""
