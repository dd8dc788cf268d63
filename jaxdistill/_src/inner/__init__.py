"""inner"""
