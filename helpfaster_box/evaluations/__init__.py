"""Golden questions: a chatbot's saved question / expected-fact pairs (and questions it must
decline), run through the real chat pipeline in the background and scored."""
