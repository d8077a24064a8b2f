"""Event-triggered journeys: event intake, trigger evaluation and sends under the matrix's rules."""
