"""Reports: revenue, receivables aging, days to pay and collection rate, top customers."""
