"""The gift recommender: catalog and users, the five gift tools, the environment, the TRM policy
module, behaviour cloning and PPO on RLlib, evaluation beside baselines, ONNX int8 export, the
recommender's server core and Serve app, and PBT of its hyperparameters."""
