"""The weekly summary e-mail to supervisors and admins: last week's main KPIs against the week before."""
