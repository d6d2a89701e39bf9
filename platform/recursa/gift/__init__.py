"""The gift recommender: catalog and users, the five gift tools and the toolset a config names
(built-in or a user's GiftTools), the environment and its token layout, the TRM policy module (any
number of candidates), behaviour cloning and PPO on RLlib (optionally anchored to the clone),
halting, evaluation beside baselines and paired comparison, ONNX int8 export, the recommender's
server core and Serve app, and PBT of its hyperparameters."""
