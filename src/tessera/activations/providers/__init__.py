"""Providers behind one small interface: SendGrid email, Twilio SMS, signed webhook, CSV file."""
