"""Business-hours calendars: weekly hours, holidays and changed days in a time zone, and business-time sums."""
