{{ audience_members('purchased_once_21_45d') }}
